-- Home currency and FX: every ledger entry stores, when it is recorded, its rate to the
-- organization's home currency and where the rate came from, so reports never re-derive
-- history from today's rates. Rates are exact decimals kept as text (units of the home currency
-- per unit of the entry's currency); reports cast them to numeric.
--
-- `fx_reference_rates` holds the ECB's daily euro reference rates (`rekomi-server admin fx
-- import`): the rate of one euro in `currency` on `day`.

create table fx_reference_rates (
    currency text    not null,
    day      date    not null,
    rate     text    not null,
    constraint fx_reference_rates_pkey primary key (currency, day),
    constraint fx_reference_rates_currency_check check (currency ~ '^[A-Z]{3}$'),
    constraint fx_reference_rates_rate_check check (rate ~ '^[0-9]+(\.[0-9]+)?$')
);

alter table ledger_events add column home_currency text;
alter table ledger_events add column fx_rate text;
alter table ledger_events add column fx_source text;

alter table ledger_events disable trigger ledger_events_append_only;
update ledger_events e
   set home_currency = o.home_currency,
       fx_rate = case when e.currency = o.home_currency then '1' end,
       fx_source = case when e.currency = o.home_currency then 'identity' end
  from organizations o
 where o.id = e.org_id;
alter table ledger_events enable trigger ledger_events_append_only;

alter table ledger_events alter column home_currency set not null;
alter table ledger_events add constraint ledger_events_home_currency_check check (home_currency ~ '^[A-Z]{3}$');
alter table ledger_events add constraint ledger_events_fx_rate_check check (fx_rate ~ '^[0-9]+(\.[0-9]+)?$');
alter table ledger_events add constraint ledger_events_fx_source_check
    check (fx_source in ('identity', 'stripe_balance_transaction', 'ecb_reference'));
alter table ledger_events add constraint ledger_events_fx_pair_check check ((fx_rate is null) = (fx_source is null));
