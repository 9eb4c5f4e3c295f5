-- orchestrate query type "write": one UPDATE of a random account, committed on its own
-- (autocommit, no explicit transaction block): the cost of a single durable write.
\set aid random(1, 100000 * :scale)
\set delta random(-5000, 5000)
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
