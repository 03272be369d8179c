-- Two kinds of notes on a report (issue 13): `notes` stay internal; `public_updates`
-- (`PublicUpdatePosted` payloads, oldest first) are written for the reporter. A
-- rejection's public reason is what the reporter is told (NULL: a neutral default).
ALTER TABLE reports
    ADD COLUMN public_updates jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN rejection_public_reason text;
