-- Money out: the commission ledger becomes payable entry by entry, and payouts pay entries.
--
-- * Every ledger entry now names its affiliate and currency (copied from its conversion, so
--   balances are one index scan) and its own payable-after time: the sale's paid time plus the
--   organization's grace days at the time it was recorded; a clawback is payable no earlier than
--   the entry it claws back.
-- * A payout is one payment to one affiliate in one currency; each of its line items pays one
--   ledger entry. An entry is held by at most one live line item (the partial unique index): a
--   payout that fails releases its line items, and their entries return to the balance.
-- * `payout_accounts` holds where an affiliate is paid; `idempotency_records` the replay window
--   of `Idempotency-Key` on `POST /api/v1/payouts/run`.

alter table ledger_events add column affiliate_id uuid;
alter table ledger_events add column currency text;
alter table ledger_events add column payable_after timestamptz;

-- Existing entries: their conversion's affiliate and currency; payable after the grace period
-- from when they happened (a clawback from when it was recorded).
alter table ledger_events disable trigger ledger_events_append_only;
update ledger_events e
   set affiliate_id = c.affiliate_id,
       currency = c.currency,
       payable_after = e.occurred_at + make_interval(days => o.payout_grace_days)
  from conversions c, organizations o
 where c.org_id = e.org_id and c.id = e.conversion_id and o.id = e.org_id;
alter table ledger_events enable trigger ledger_events_append_only;

alter table ledger_events alter column affiliate_id set not null;
alter table ledger_events alter column currency set not null;
alter table ledger_events alter column payable_after set not null;
alter table ledger_events add constraint ledger_events_affiliate_fkey
    foreign key (org_id, affiliate_id) references affiliates (org_id, id);
alter table ledger_events add constraint ledger_events_currency_check check (currency ~ '^[A-Z]{3}$');
-- Balances and payout candidates: an affiliate's entries in a currency by payable time (runs
-- page through affiliates in this order). The only index the payable columns add: every sale
-- pays for it.
create index ledger_events_balance_idx on ledger_events (org_id, affiliate_id, currency, payable_after)
    where commission_minor <> 0;
alter table organizations add column minimum_payout_minor bigint not null default 0;
alter table organizations add column home_currency_changed_at timestamptz;
alter table organizations add constraint organizations_minimum_payout_check check (minimum_payout_minor >= 0);

create table payout_accounts (
    org_id             uuid        not null,
    affiliate_id       uuid        not null,
    stripe_account_id  text,
    payouts_enabled    boolean     not null default false,
    details_submitted  boolean     not null default false,
    paypal_email       text,
    wise_email         text,
    created_at         timestamptz not null,
    updated_at         timestamptz not null,
    constraint payout_accounts_pkey primary key (org_id, affiliate_id),
    constraint payout_accounts_affiliate_fkey foreign key (org_id, affiliate_id) references affiliates (org_id, id)
);
-- account.updated finds the affiliates an account pays.
create index payout_accounts_stripe_account_idx on payout_accounts (stripe_account_id) where stripe_account_id is not null;

create table payouts (
    id                      uuid        not null,
    org_id                  uuid        not null,
    affiliate_id            uuid        not null,
    amount_minor            bigint      not null,
    currency                text        not null,
    method                  text        not null,
    status                  text        not null,
    destination             text,
    stripe_transfer_id      text,
    external_transaction_id text,
    notes                   text,
    failure_reason          text,
    attempt                 integer     not null,
    period_start            date,
    period_end              date        not null,
    created_at              timestamptz not null,
    updated_at              timestamptz not null,
    paid_at                 timestamptz,
    failed_at               timestamptz,
    constraint payouts_pkey primary key (id),
    constraint payouts_org_id_id_key unique (org_id, id),
    constraint payouts_affiliate_fkey foreign key (org_id, affiliate_id) references affiliates (org_id, id),
    constraint payouts_amount_check check (amount_minor > 0),
    constraint payouts_currency_check check (currency ~ '^[A-Z]{3}$'),
    constraint payouts_method_check check (method in ('Manual', 'StripeConnect', 'PayPal', 'Wise')),
    constraint payouts_status_check check (status in ('Pending', 'Processing', 'Paid', 'Failed')),
    constraint payouts_attempt_check check (attempt between 1 and 2147483647)
);
create index payouts_org_idx on payouts (org_id, id desc);
create index payouts_affiliate_idx on payouts (org_id, affiliate_id, id desc);
-- The reconciler's queue: transfers whose outcome is not known yet.
create index payouts_processing_idx on payouts (updated_at, id) where status = 'Processing';
create unique index payouts_stripe_transfer_key on payouts (stripe_transfer_id) where stripe_transfer_id is not null;

create table payout_line_items (
    id              uuid    not null,
    org_id          uuid    not null,
    payout_id       uuid    not null,
    ledger_event_id uuid    not null,
    conversion_id   uuid    not null,
    amount_minor    bigint  not null,
    released        boolean not null default false,
    constraint payout_line_items_pkey primary key (id)
    -- No foreign keys: a run writes a payout's line items right after the payout, from the
    -- entries it read in the same transaction, and none of payouts, ledger_events (append-only)
    -- and conversions ever loses a row. Per-row key checks would take a KEY SHARE lock on every
    -- paid ledger row and, planned while a run's first payouts are not yet counted, slow each
    -- page of a large run down as the run grows.
);
create index payout_line_items_payout_idx on payout_line_items (org_id, payout_id, id);
-- An entry is paid by one live payout at most: the database refuses a second claim.
create unique index payout_line_items_live_key on payout_line_items (ledger_event_id) where not released;

create table idempotency_records (
    org_id        uuid        not null,
    key           text        not null,
    request_hash  text        not null,
    status_code   integer,
    response_body text,
    created_at    timestamptz not null,
    expires_at    timestamptz not null,
    constraint idempotency_records_pkey primary key (org_id, key),
    constraint idempotency_records_org_fkey foreign key (org_id) references organizations (id)
);
