-- Bans and duplicates match normalized text (see moderation.canonical): a comment's
-- `body_key` is the hash of its canonical body, and a name or e-mail ban is matched by its
-- folded `match_value` (the value stays as the moderator wrote it). IP bans cover a network
-- (an IPv6 address is banned as its /64), matched by containment.

ALTER TABLE comments ADD COLUMN body_key bytea;
CREATE INDEX comments_post_body_key ON comments (post_id, body_key, created_at);
DROP INDEX comments_post_body_hash;

ALTER TABLE bans ADD COLUMN match_value text;
UPDATE bans SET match_value = lower(value) WHERE kind IN ('name', 'email');
CREATE INDEX bans_match_value ON bans (kind, match_value) WHERE kind IN ('name', 'email');
ALTER TABLE bans ADD COLUMN network inet
    GENERATED ALWAYS AS (CASE WHEN kind = 'ip' THEN value::inet END) STORED;
CREATE INDEX bans_network ON bans USING gist (network inet_ops) WHERE kind = 'ip';
