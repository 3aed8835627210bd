-- Run once by the postgres image, as the `sink` superuser, when its data volume is first created
-- (docker-compose.yml mounts this folder on /docker-entrypoint-initdb.d). The `sink` database
-- itself comes from POSTGRES_DB; its tables come from `sink migrate`.

-- Apicurio Registry's storage, so that schema ids survive a restart of the registry: the Kafka
-- topics keep messages that refer to them.
CREATE DATABASE registry;

-- Metabase's own application database (the `dashboard` profile).
CREATE DATABASE metabase;

-- A read-only role for dashboards: SELECT on every table that `sink` creates in the warehouse,
-- now and after later migrations.
CREATE ROLE reader LOGIN PASSWORD 'reader';
GRANT CONNECT ON DATABASE sink TO reader;
GRANT USAGE ON SCHEMA public TO reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;
ALTER DEFAULT PRIVILEGES FOR ROLE sink IN SCHEMA public GRANT SELECT ON TABLES TO reader;
