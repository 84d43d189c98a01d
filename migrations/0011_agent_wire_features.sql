-- Wire behaviours an agent announced in its Hello (Hello.features), so a
-- server offers one only to agents that have it, whichever node they are on.
ALTER TABLE agents ADD COLUMN IF NOT EXISTS wire_features text[] NOT NULL DEFAULT '{}';
