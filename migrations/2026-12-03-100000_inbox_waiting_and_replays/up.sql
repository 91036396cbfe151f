-- Refunds that arrive before their sale wait for it (status 'Waiting', the payment in
-- waiting_for) instead of being skipped or retried until they give up; the sale wakes them.
-- Owners' replays of an event are counted, so they can be capped.
alter table inbox_events drop constraint inbox_events_status_check;
alter table inbox_events
    add constraint inbox_events_status_check check (status in ('Pending', 'Done', 'Failed', 'Skipped', 'Waiting')),
    add column waiting_for text,
    add column replays bigint not null default 0,
    add constraint inbox_events_replays_check check (replays between 0 and 4294967295),
    add constraint inbox_events_waiting_for_check check ((status = 'Waiting') = (waiting_for is not null));

-- wake_waiting_inbox_events: the refunds waiting for a payment.
create index inbox_events_waiting_idx on inbox_events (waiting_for) where status = 'Waiting';
-- wake_due_inbox_events: waiting refunds due for a recheck.
create index inbox_events_waiting_due_idx on inbox_events (next_attempt_at, id) where status = 'Waiting';
-- orgs_of_payment: which organization recorded the sale of a refunded payment.
create index ledger_events_payment_idx on ledger_events (stripe_invoice_id) where stripe_invoice_id is not null;
