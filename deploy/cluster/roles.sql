-- The app's role and database, made once on the primary (as postgres).
-- Behind PgBouncer the app cannot send its timeouts at connect: they are the
-- role's, the same values as DB_LOCK_TIMEOUT_MS and DB_STATEMENT_TIMEOUT_MS.
SELECT 'CREATE ROLE ticketbooth LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ticketbooth') \gexec
ALTER ROLE ticketbooth PASSWORD :'app_password';
ALTER ROLE ticketbooth SET lock_timeout = '3s';
ALTER ROLE ticketbooth SET statement_timeout = '10s';
ALTER ROLE ticketbooth SET idle_in_transaction_session_timeout = '60s';
SELECT 'CREATE DATABASE ticketbooth OWNER ticketbooth' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ticketbooth') \gexec
