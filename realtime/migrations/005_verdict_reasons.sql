-- Why the moderation policy held or blocked a comment, for moderators only.

ALTER TABLE comments ADD COLUMN reasons jsonb NOT NULL DEFAULT '[]';
