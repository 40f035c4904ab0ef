-- delayed_jobs as Delayed Job creates it: collectiveidea/delayed_job_active_record,
-- lib/generators/delayed_job/templates/migration.rb, rendered by Rails 7 for PostgreSQL
-- (t.datetime is timestamp(6) WITHOUT time zone holding UTC; queue NULL is the default queue).
CREATE TABLE delayed_jobs (
    id bigserial PRIMARY KEY,
    priority integer DEFAULT 0 NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    handler text NOT NULL,
    last_error text,
    run_at timestamp(6) without time zone,
    locked_at timestamp(6) without time zone,
    failed_at timestamp(6) without time zone,
    locked_by character varying,
    queue character varying,
    created_at timestamp(6) without time zone,
    updated_at timestamp(6) without time zone
);
CREATE INDEX delayed_jobs_priority ON delayed_jobs (priority, run_at);
