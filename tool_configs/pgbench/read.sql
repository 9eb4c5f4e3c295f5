-- orchestrate query type "read": one point SELECT by primary key on pgbench's schema
-- (pgbench's built-in select-only). :scale comes from pgbench's -s (orchestrate passes the
-- scale it found in pgbench_branches), so every account of the table can be drawn.
\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
