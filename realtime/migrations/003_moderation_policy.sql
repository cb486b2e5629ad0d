-- Flood limits count a client's recent comments by address and by e-mail.

CREATE INDEX comments_ip_created_at ON comments (ip, created_at);
CREATE INDEX comments_email_created_at ON comments (author_email, created_at);
