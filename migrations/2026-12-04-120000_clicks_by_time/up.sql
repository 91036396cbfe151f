-- The daily click rewards read one UTC day of clicks across every organization.
create index clicks_clicked_at_idx on clicks (clicked_at);
