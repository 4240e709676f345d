-- The PostgreSQL peer of the benchmark (scripts/bench/run.sh, scripts/bench/src/bin/ticketd-peer.rs).
-- One row per seat of a dt; a hold marks its seats held (status 1) with an expiry; a purchase
-- turns a live hold into an order and its seats sold (status 2); the peer's sweeper gives the
-- seats of expired holds back every second (expire_holds), as ticketd's leader does.
-- Durability as ticketd's: synchronous_commit stays on (set again by the peer per connection).
DROP FUNCTION IF EXISTS hold_best(text, text, int, text, int);
DROP FUNCTION IF EXISTS hold_seats(text, int[], text, int);
DROP FUNCTION IF EXISTS purchase(text, text, bigint, text);
DROP FUNCTION IF EXISTS expire_holds(int);
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS holds;
DROP TABLE IF EXISTS seats;

CREATE TABLE seats (
  dt_id      text     NOT NULL,
  seat_idx   int      NOT NULL,
  tier_id    text     NOT NULL,
  status     smallint NOT NULL DEFAULT 0,  -- 0 free, 1 held, 2 sold
  hold_id    text,
  held_until timestamptz,
  PRIMARY KEY (dt_id, seat_idx)
);
-- Best available walks the free seats of a tier in seat order (best seats first).
CREATE INDEX seats_free ON seats (dt_id, tier_id, seat_idx) WHERE status = 0;

CREATE TABLE holds (
  hold_id    text PRIMARY KEY,
  dt_id      text        NOT NULL,
  expires_at timestamptz NOT NULL,
  seats      int[]       NOT NULL
);
-- The sweeper takes the holds due first.
CREATE INDEX holds_expiry ON holds (expires_at);

CREATE TABLE orders (
  order_id     text PRIMARY KEY,
  hold_id      text        NOT NULL,
  dt_id        text        NOT NULL,
  seats        int[]       NOT NULL,
  amount_minor bigint      NOT NULL,
  payment_ref  text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- Best available: the first p_qty free seats of the tier, skipping rows other transactions
-- have locked; all or nothing (SQLSTATE TK410 when the tier has too few).
CREATE FUNCTION hold_best(p_dt text, p_tier text, p_qty int, p_hold text, p_ttl_s int)
RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE got int[];
BEGIN
  WITH picked AS (
    SELECT seat_idx FROM seats
    WHERE dt_id = p_dt AND tier_id = p_tier AND status = 0
    ORDER BY seat_idx LIMIT p_qty
    FOR UPDATE SKIP LOCKED
  ), upd AS (
    UPDATE seats s SET status = 1, hold_id = p_hold,
                       held_until = now() + make_interval(secs => p_ttl_s)
    FROM picked WHERE s.dt_id = p_dt AND s.seat_idx = picked.seat_idx
    RETURNING s.seat_idx
  )
  SELECT array_agg(seat_idx ORDER BY seat_idx) INTO got FROM upd;
  IF got IS NULL OR cardinality(got) < p_qty THEN
    RAISE EXCEPTION 'not enough free seats' USING ERRCODE = 'TK410';
  END IF;
  INSERT INTO holds VALUES (p_hold, p_dt, now() + make_interval(secs => p_ttl_s), got);
  RETURN got;
END $$;

-- Chosen seats: a conditional UPDATE; all or nothing (SQLSTATE TK409 when one is not free).
CREATE FUNCTION hold_seats(p_dt text, p_seats int[], p_hold text, p_ttl_s int)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
  UPDATE seats SET status = 1, hold_id = p_hold,
                   held_until = now() + make_interval(secs => p_ttl_s)
  WHERE dt_id = p_dt AND seat_idx = ANY (p_seats) AND status = 0;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n < cardinality(p_seats) THEN
    RAISE EXCEPTION 'seat not free' USING ERRCODE = 'TK409';
  END IF;
  INSERT INTO holds VALUES (p_hold, p_dt, now() + make_interval(secs => p_ttl_s), p_seats);
  RETURN n;
END $$;

-- Purchase: a live hold becomes an order, its seats sold, in one transaction (after the
-- payment's authorization; the peer captures after the commit). SQLSTATE TK411 when the hold
-- expired or is gone.
CREATE FUNCTION purchase(p_hold text, p_order text, p_amount bigint, p_payment text)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE h record; n int;
BEGIN
  DELETE FROM holds WHERE hold_id = p_hold AND expires_at > now() RETURNING dt_id, seats INTO h;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hold expired' USING ERRCODE = 'TK411';
  END IF;
  UPDATE seats SET status = 2, held_until = NULL
  WHERE dt_id = h.dt_id AND seat_idx = ANY (h.seats) AND hold_id = p_hold AND status = 1;
  GET DIAGNOSTICS n = ROW_COUNT;
  INSERT INTO orders VALUES (p_order, p_hold, h.dt_id, h.seats, p_amount, p_payment);
  RETURN n;
END $$;

-- Expiry: at most p_max holds past their time give their seats back; returns how many. One
-- UPDATE per hold by the primary key (a join of the seats with the expired holds was planned as
-- a scan of every dt's seats once the tables had grown past the statistics it was planned on).
CREATE FUNCTION expire_holds(p_max int)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE h record; n int := 0;
BEGIN
  FOR h IN
    DELETE FROM holds WHERE hold_id IN (
      SELECT hold_id FROM holds WHERE expires_at <= now()
      ORDER BY expires_at LIMIT p_max FOR UPDATE SKIP LOCKED)
    RETURNING hold_id, dt_id, seats
  LOOP
    UPDATE seats SET status = 0, hold_id = NULL, held_until = NULL
    WHERE dt_id = h.dt_id AND seat_idx = ANY (h.seats) AND hold_id = h.hold_id AND status = 1;
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
