-- Posts, threaded comments, the per-post event log, moderators, sessions, bans, settings, audit.

CREATE TABLE posts (
    id            bigserial PRIMARY KEY,
    slug          text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9._-]{1,200}$'),
    title         text NOT NULL,
    url           text,
    moderation    text NOT NULL DEFAULT 'post' CHECK (moderation IN ('post', 'pre')),
    open          boolean NOT NULL DEFAULT true,
    seq           bigint NOT NULL DEFAULT 0,
    comment_count integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE comments (
    id              bigserial PRIMARY KEY,
    post_id         bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    parent_id       bigint REFERENCES comments (id) ON DELETE CASCADE,
    depth           integer NOT NULL DEFAULT 0,
    kind            text NOT NULL DEFAULT 'comment' CHECK (kind IN ('comment', 'pingback')),
    status          text NOT NULL
                    CHECK (status IN ('approved', 'pending', 'spam', 'rejected', 'deleted')),
    author_name     text NOT NULL,
    author_email    text,
    author_url      text,
    ip              inet,
    avatar          text NOT NULL,
    user_agent      text,
    body            text NOT NULL,
    html            text NOT NULL,
    version         integer NOT NULL DEFAULT 1,
    client_id       uuid,
    edit_token_hash bytea,
    public_replies  integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    edited_at       timestamptz,
    UNIQUE (post_id, client_id)
);
CREATE INDEX comments_post_id_id ON comments (post_id, id);
CREATE INDEX comments_status_id ON comments (status, id);
CREATE INDEX comments_parent_id ON comments (parent_id);
CREATE INDEX comments_dup_check ON comments (post_id, created_at);

CREATE TABLE events (
    post_id    bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    type       text NOT NULL,
    data       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, seq)
);
CREATE INDEX events_created_at ON events (created_at);

CREATE TABLE moderators (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY,
    moderator_id bigint NOT NULL REFERENCES moderators (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

CREATE TABLE bans (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('ip', 'email', 'name')),
    value      text NOT NULL,
    shadow     boolean NOT NULL DEFAULT false,
    reason     text,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text
);
CREATE INDEX bans_kind_value ON bans (kind, value);

CREATE TABLE settings (
    name  text PRIMARY KEY,
    value jsonb NOT NULL
);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    moderator  text NOT NULL,
    action     text NOT NULL,
    comment_id bigint,
    post_id    bigint,
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now()
);
