-- Whether an upload keeps the file it replaces as a backup; null: the
-- agent's own default.
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS keep_backup boolean;
