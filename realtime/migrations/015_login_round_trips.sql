-- A login attempt in one round trip instead of six (a transaction, a lock, the count, the
-- insert, the commit, then the account): each round trip is work for the event loop that the
-- live sockets share, and logins arrive by the dozen when someone guesses.
--
-- Under a lock on the address, so that attempts sent at once cannot all slip under the limit
-- before any is counted: count the address's failures and the account's failures at that
-- address in the window (at most as many as the limits need). At either limit, `attempt` is
-- null and `wait_s` is how long until the oldest counted failure leaves the window; else the
-- attempt is counted as failed until it proves right. Either way, the account's password hash
-- comes with it (null when there is no such account).
--
-- A volatile function's statements each see what committed before they began, so the count
-- taken after the lock sees every attempt counted by the lock's previous holder.
CREATE FUNCTION realtime_begin_login(p_address text, p_account bytea, p_username text,
                                     p_window interval, p_per_account int, p_per_address int,
                                     OUT attempt bigint, OUT wait_s double precision,
                                     OUT moderator_id bigint, OUT username text,
                                     OUT password_hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    address_n int;
    address_oldest timestamptz;
    account_n int;
    account_oldest timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('login:' || p_address, 7331));
    SELECT count(*), min(f.created_at) INTO address_n, address_oldest
      FROM (SELECT created_at FROM login_failures
             WHERE address = p_address AND created_at > now() - p_window
             ORDER BY created_at DESC LIMIT p_per_address) f;
    SELECT count(*), min(f.created_at) INTO account_n, account_oldest
      FROM (SELECT created_at FROM login_failures
             WHERE address = p_address AND account = p_account
               AND created_at > now() - p_window
             ORDER BY created_at DESC LIMIT p_per_account) f;
    SELECT m.id, m.username, m.password_hash INTO moderator_id, username, password_hash
      FROM moderators m WHERE m.username = p_username;
    wait_s := greatest(
        CASE WHEN account_n >= p_per_account
             THEN extract(epoch FROM account_oldest + p_window - now()) END,
        CASE WHEN address_n >= p_per_address
             THEN extract(epoch FROM address_oldest + p_window - now()) END);
    IF wait_s IS NULL THEN
        INSERT INTO login_failures (account, address) VALUES (p_account, p_address)
            RETURNING id INTO attempt;
        wait_s := 0;
    END IF;
END $$;
