-- The tracker store's database, beside the shop database the image's POSTGRES_DB creates.
CREATE DATABASE cartguard_tracker OWNER cartguard;
