-- Station management (issue 16 item 7): a contact number, whether the station takes
-- new reports, and when it was last changed. Routing reads only active stations.
ALTER TABLE stations ADD COLUMN contact_phone text;
ALTER TABLE stations ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE stations ADD COLUMN updated_at timestamptz;
UPDATE stations SET updated_at = created_at WHERE updated_at IS NULL;
ALTER TABLE stations ALTER COLUMN updated_at SET NOT NULL;
