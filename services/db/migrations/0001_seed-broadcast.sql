-- The one broadcast conversation that every user takes part in.
INSERT INTO "conversations" ("id", "kind") VALUES ('broadcast', 'broadcast') ON CONFLICT ("id") DO NOTHING;
