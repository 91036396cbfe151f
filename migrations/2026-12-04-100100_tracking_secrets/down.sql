drop table tracking_secrets;
