-- Threads read page by page, and threads created by the widget on first view.
--
-- Every reply knows the top-level comment it hangs under (root_id), so a page of top-level
-- comments brings their replies with one index scan per root, and a permalink deep in a
-- thread can be shown in context. A trigger fills it for every writer (the API, importers,
-- seeding scripts); a reply's parent never changes, so it never goes stale.

ALTER TABLE comments ADD COLUMN root_id bigint;

WITH RECURSIVE tree AS (
    SELECT id, id AS root FROM comments WHERE parent_id IS NULL
    UNION ALL
    SELECT c.id, tree.root FROM comments c JOIN tree ON c.parent_id = tree.id
)
UPDATE comments SET root_id = tree.root FROM tree
 WHERE comments.id = tree.id AND comments.parent_id IS NOT NULL;

CREATE FUNCTION comments_set_root() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT coalesce(root_id, id) INTO NEW.root_id FROM comments WHERE id = NEW.parent_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER comments_set_root BEFORE INSERT ON comments
    FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL) EXECUTE FUNCTION comments_set_root();

CREATE INDEX comments_root_id_id ON comments (root_id, id) WHERE root_id IS NOT NULL;
CREATE INDEX comments_post_roots ON comments (post_id, id) WHERE parent_id IS NULL;

-- Threads created on first view, counted per address across every node.
CREATE TABLE thread_creations (
    ip         inet NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX thread_creations_ip_created_at ON thread_creations (ip, created_at);
