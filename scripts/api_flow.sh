#!/usr/bin/env bash
# The whole docs/API.md flow against scripts/run.sh (the API on 127.0.0.1:8080, the demo data):
# every step's output, to compare with the document. Needs curl and jq; run it once per fresh
# cluster (the keys and the accounts it creates are fixed).
set -u
API=http://127.0.0.1:8080
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; cd "$WORK"
step() { echo; echo "### $*"; }
J='content-type: application/json'
step signup
curl -s -X POST $API/v1/users -H "$J" -H 'idempotency-key: signup-1' \
  -d '{"email":"ada@example.org","password":"correct horse battery","name":"Ada Lovelace","phone":"+4712345678"}'
TOKEN=$(curl -s -X POST $API/v1/sessions -H "$J" -H 'idempotency-key: login-1' \
  -d '{"email":"ada@example.org","password":"correct horse battery"}' | jq -r .token)
step browse
curl -s "$API/v1/events?lat=59.91&lon=10.75&radius_km=50" | jq -c '.events[] | {title, dt_id, starts_at, distance_m}'
curl -s "$API/v1/events?category=concert&limit=1" | jq .next_cursor
curl -s "$API/v1/events?q=aurora" | jq '.events[].title'
step event
curl -s $API/v1/events/aurora-live | jq .
curl -s $API/v1/events/aurora-live/dts | jq -c '.dts[] | {dt_id, starts_at, status}'
curl -s $API/v1/events/aurora-live/dts/aurora-live-d0 | jq '.seat_map | {seat_count, seat_states: .seat_states[0:24], tier_runs: .tier_runs[0:2], tiers: [.tiers[] | {tier_id, price_minor, fee_minor, available, held, sold}]}'
step venue
curl -s $API/v1/venues/oslo-spektrum | jq -c '.seating_map.sections[0].rows[0].seats[0]'
step hold
curl -s -i -X POST $API/v1/events/aurora-live/dts/aurora-live-d0/holds \
  -H "authorization: Bearer $TOKEN" -H "$J" -H 'idempotency-key: hold-1' \
  -d '{"seats":[0,1]}' | tr -d '\r' | grep -iE '^(HTTP|location|x-log-index)|^\{' > hold.txt
grep -v '^{' hold.txt; grep '^{' hold.txt | jq . | tee hold.json
HOLD=$(jq -r .hold_id hold.json); TOTAL=$(jq -r .total_minor hold.json)
curl -s -X POST $API/v1/events/aurora-live/dts/aurora-live-d0/holds \
  -H "authorization: Bearer $TOKEN" -H "$J" -H 'idempotency-key: hold-2' \
  -d '{"tier_id":"silver","quantity":4}' | tee hold2.json | jq -c '{hold_id, status, seats: [.seats[].label], total_minor}'
HOLD2=$(jq -r .hold_id hold2.json)
step taken
curl -s -X POST $API/v1/events/aurora-live/dts/aurora-live-d0/holds \
  -H "authorization: Bearer $TOKEN" -H "$J" -H 'idempotency-key: hold-3' -d '{"seats":[0]}' | jq -c '{status, code}'
step read-release
curl -s $API/v1/events/aurora-live/dts/aurora-live-d0/holds/$HOLD2 -H "authorization: Bearer $TOKEN" | jq -c '{hold_id, status, expires_at}'
curl -s -X DELETE $API/v1/events/aurora-live/dts/aurora-live-d0/holds/$HOLD2 \
  -H "authorization: Bearer $TOKEN" -H 'idempotency-key: release-1' | jq -c '{hold_id, status}'
step buy
curl -s -X POST $API/v1/events/aurora-live/dts/aurora-live-d0 \
  -H "authorization: Bearer $TOKEN" -H "$J" -H 'idempotency-key: buy-1' \
  -d "{\"hold_id\":\"$HOLD\",\"expected_total_minor\":$TOTAL,\"payment_method_token\":\"pm_card_visa\"}" | tee order.json | jq .
ORDER=$(jq -r .order_id order.json); TICKET=$(jq -r '.tickets[0].ticket_id' order.json); TICKET2=$(jq -r '.tickets[1].ticket_id' order.json)
step mine
curl -s $API/v1/me/orders -H "authorization: Bearer $TOKEN" | jq -c '.orders[] | {order_id, status, total_minor}'
curl -s $API/v1/me/tickets -H "authorization: Bearer $TOKEN" | jq -c '.tickets[] | {ticket_id, seat_label, status}'
curl -s $API/v1/orders/$ORDER -H "authorization: Bearer $TOKEN" | jq -c '{order_id, status, created_at}'
curl -s $API/v1/tickets/$TICKET -H "authorization: Bearer $TOKEN" | tee ticket.json | jq '{seat_label, status, code, code_refresh_in_s, qr_payload}'
PAYLOAD=$(jq -r .qr_payload ticket.json)
step refund
curl -s -X POST $API/v1/tickets/$TICKET2/refund -H "authorization: Bearer $TOKEN" -H 'idempotency-key: refund-1' | jq -c .
step payment-method
curl -s -X PUT $API/v1/me/payment-method -H "authorization: Bearer $TOKEN" -H "$J" \
  -H 'idempotency-key: pm-1' -d '{"payment_method_token":"pm_card_visa"}' | jq -c '{saved_payment_method}'
step me
curl -s $API/v1/me -H "authorization: Bearer $TOKEN" | jq .
curl -s -X PUT $API/v1/me/reminders -H "authorization: Bearer $TOKEN" -H "$J" \
  -H 'idempotency-key: rem-1' -d '{"days_before":1,"email":true,"sms":true}' | jq -c .reminders
step gate
SCANNER=$(curl -s -X POST $API/v1/sessions -H "$J" -H 'idempotency-key: login-scanner' \
  -d '{"email":"scanner@example.org","password":"demo-password"}' | jq -r .token)
curl -s -X POST $API/v1/scans -H "authorization: Bearer $SCANNER" -H "$J" \
  -H 'idempotency-key: scan-1' -d "{\"qr_payload\":\"$PAYLOAD\",\"dt_id\":\"aurora-live-d0\",\"gate\":\"north-3\"}" | jq -c .
curl -s -X POST $API/v1/scans -H "authorization: Bearer $SCANNER" -H "$J" \
  -H 'idempotency-key: scan-2' -d "{\"qr_payload\":\"$PAYLOAD\",\"dt_id\":\"aurora-live-d0\",\"gate\":\"south-1\"}" | jq -c .
step cancel
curl -s -X POST $API/v1/orders/$ORDER/cancel -H "authorization: Bearer $TOKEN" \
  -H "$J" -H 'idempotency-key: cancel-1' -d '{"reason":"cannot come"}' | jq -c '{status, code, detail}'
step seller
SELLER=$(curl -s -X POST $API/v1/sessions -H "$J" -H 'idempotency-key: login-seller' \
  -d '{"email":"seller1@example.org","password":"demo-password"}' | jq -r .token)
SELLER_ID=$(curl -s $API/v1/me -H "authorization: Bearer $SELLER" | jq -r .user_id)
curl -s -X POST $API/v1/venues -H "authorization: Bearer $SELLER" -H "$J" \
  -H 'idempotency-key: venue-1' -d '{"name":"Sentrum Scene","city":"Oslo","address":"Arbeidersamfunnets plass 1",
  "lat":59.915,"lon":10.751,"seating_map":{"sections":[{"section_id":"A","name":"Parterre","rows":[
  {"label":"1","seats":[{"number":"1","x":0,"y":0},{"number":"2","x":4,"y":0}]}]}],
  "ga_areas":[{"area_id":"floor","name":"Floor","capacity":300}]}}' | tee venue.json | jq -c '{venue_id, name, seat_count}'
VENUE=$(jq -r .venue_id venue.json)
curl -s -X POST $API/v1/events -H "authorization: Bearer $SELLER" -H "$J" \
  -H 'idempotency-key: event-1' -d '{"title":"Sentrum Sessions","category":"concert","performers":["The Band"]}' | tee event.json | jq -c .
EVENT=$(jq -r .event_id event.json)
curl -s -X POST $API/v1/events/$EVENT/dts -H "authorization: Bearer $SELLER" -H "$J" \
  -H 'idempotency-key: dt-1' -d "{\"venue_id\":\"$VENUE\",\"starts_at\":\"2030-01-01T19:00:00Z\",\"time_zone\":\"Europe/Oslo\",
  \"tiers\":[{\"tier_id\":\"std\",\"name\":\"Standard\",\"price_minor\":45000,\"currency\":\"NOK\",\"sections\":[\"A\"],
  \"ga_areas\":[\"floor\"]}],\"sale_starts_at\":\"2026-01-01T10:00:00Z\",\"sale_ends_at\":\"2030-01-01T18:00:00Z\",\"publish\":true}" | tee dt.json | jq .
DT=$(jq -r .dt_id dt.json)
curl -s -X PUT $API/v1/events/$EVENT/dts/$DT/sale-window -H "authorization: Bearer $SELLER" \
  -H "$J" -H 'idempotency-key: sw-1' -d '{"sale_starts_at":"2026-01-01T10:00:00Z","sale_ends_at":"2029-12-31T12:00:00Z"}' | jq -c '{status, sale_starts_at, sale_ends_at}'
curl -s $API/v1/events/$EVENT/dts/$DT/sales -H "authorization: Bearer $SELLER" | jq -c .
curl -s -X PUT $API/v1/sellers/$SELLER_ID/plan -H "authorization: Bearer $SELLER" \
  -H "$J" -H 'idempotency-key: plan-1' -d '{"plan":"vip"}' | jq -c .
curl -s "$API/v1/sellers/$SELLER_ID/ledger?limit=1" -H "authorization: Bearer $SELLER" | jq -c '{plan, fee_bps, totals}'
curl -s -X POST $API/v1/events/$EVENT/dts/$DT/cancel -H "authorization: Bearer $SELLER" \
  -H "$J" -H 'idempotency-key: cxl-1' -d '{"reason":"illness"}' | jq -c '{status: .dt.status, holds_released, orders_canceled}'
