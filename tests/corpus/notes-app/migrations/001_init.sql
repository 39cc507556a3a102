CREATE TABLE IF NOT EXISTS notes (
    id         bigserial PRIMARY KEY,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO notes (body) SELECT 'welcome' WHERE NOT EXISTS (SELECT 1 FROM notes);
