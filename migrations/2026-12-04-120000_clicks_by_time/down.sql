drop index clicks_clicked_at_idx;
