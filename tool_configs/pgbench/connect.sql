-- orchestrate: the connection check before a run of only the user's own scripts (needs no table).
SELECT 1;
