-- A SCIM group's member entries one row per member (sqlite; keep in step with
-- ../postgres/0580_scim_group_members.sql). They were one JSON array per group, which every
-- membership change rewrote whole: megabytes per change for a large group, and a provisioning
-- client (Entra, Okta) sends one PATCH per change. An entry is the member as SCIM wrote it
-- (`display`, `type`); it lives exactly as long as the membership it describes.
CREATE TABLE scim_group_members (
    group_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    entry    TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id),
    FOREIGN KEY (group_id, user_id) REFERENCES group_members (group_id, user_id) ON DELETE CASCADE
);

-- The entries of members the group still has; an entry for a member who left was never shown.
INSERT INTO scim_group_members (group_id, user_id, entry)
SELECT sg.group_id, json_extract(e.value, '$.value'), json(e.value)
FROM scim_groups sg, json_each(sg.members) e
WHERE EXISTS (
    SELECT 1 FROM group_members m
    WHERE m.group_id = sg.group_id AND m.user_id = json_extract(e.value, '$.value')
)
ON CONFLICT (group_id, user_id) DO NOTHING;

ALTER TABLE scim_groups DROP COLUMN members;
