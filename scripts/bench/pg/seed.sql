-- Seats of one benchmark dt (psql -v dt=ID), laid out as ticketd's demo stadium: 50,400 seats,
-- tier gold = the first section (2,100 seats), silver = the rest.
INSERT INTO seats (dt_id, seat_idx, tier_id)
SELECT :'dt', i, CASE WHEN i < 2100 THEN 'gold' ELSE 'silver' END
FROM generate_series(0, 50399) AS i;
ANALYZE seats;
