-- The moderator view of each comment change, read back by the nodes that have a moderator
-- subscribed (NOTIFY carries only the key), and pruned minutes later.
CREATE TABLE moderation_events (
    comment_id bigint NOT NULL,
    version    integer NOT NULL,
    type       text NOT NULL,
    data       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (comment_id, version)
);
CREATE INDEX moderation_events_created_at ON moderation_events (created_at);

-- Every node closes the sockets of a session that ended: a deleted session row, however it
-- was deleted (logout, "log out everywhere", the account removed), is announced at commit.
CREATE FUNCTION realtime_sessions_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone) THEN
        PERFORM pg_notify('realtime_sessions', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_ended AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION realtime_sessions_ended();
