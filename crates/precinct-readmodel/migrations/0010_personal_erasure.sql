-- Personal data of an erased data subject: the sealed fields are gone for good.
ALTER TABLE reports ADD COLUMN personal_erased boolean NOT NULL DEFAULT false;
