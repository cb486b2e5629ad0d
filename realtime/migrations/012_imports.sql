-- Where each imported comment came from, so that importing the same file twice changes
-- nothing and a later export of the same site adds only what is new. `source` names the
-- exporting site (e.g. `wordpress:https://blog.example`, `disqus`); `source_id` is that
-- site's own id of the comment.

CREATE TABLE imported_comments (
    source     text NOT NULL,
    source_id  text NOT NULL,
    comment_id bigint NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    PRIMARY KEY (source, source_id)
);
CREATE INDEX imported_comments_comment_id ON imported_comments (comment_id);

-- Imports match a thread by its page's URL before its slug.
CREATE INDEX posts_url ON posts (url);
