alter table ledger_events drop constraint ledger_events_fx_pair_check;
alter table ledger_events drop constraint ledger_events_fx_source_check;
alter table ledger_events drop constraint ledger_events_fx_rate_check;
alter table ledger_events drop constraint ledger_events_home_currency_check;
alter table ledger_events drop column fx_source;
alter table ledger_events drop column fx_rate;
alter table ledger_events drop column home_currency;
drop table fx_reference_rates;
