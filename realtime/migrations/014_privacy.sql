-- Addresses and user agents are dropped after REALTIME_IP_RETENTION_DAYS: this index finds
-- the comments that still hold one, oldest first, without reading the rest.

CREATE INDEX comments_addresses_kept ON comments (created_at)
    WHERE ip IS NOT NULL OR user_agent IS NOT NULL;
CREATE INDEX reports_created_at ON reports (created_at);
