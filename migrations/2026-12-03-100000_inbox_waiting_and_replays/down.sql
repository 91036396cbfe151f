drop index ledger_events_payment_idx;
drop index inbox_events_waiting_due_idx;
drop index inbox_events_waiting_idx;
update inbox_events set status = 'Pending', next_attempt_at = now() where status = 'Waiting';
alter table inbox_events
    drop constraint inbox_events_waiting_for_check,
    drop constraint inbox_events_replays_check,
    drop column replays,
    drop column waiting_for,
    drop constraint inbox_events_status_check;
alter table inbox_events add constraint inbox_events_status_check check (status in ('Pending', 'Done', 'Failed', 'Skipped'));
