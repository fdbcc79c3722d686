-- launch_without_confirmation (postgres): IdP-initiated launch (/saml/init/{app}) normally
-- issues at once only when the browser says the click came from our own pages
-- (Sec-Fetch-Site: same-origin or none); from anywhere else it asks the user to confirm,
-- so another site's link cannot sign a visitor into an application of its choosing (login
-- CSRF). An application whose launch links live elsewhere (an intranet page) may opt out.
-- Keep in step with ../sqlite/0310_launch_confirmation.sql.

ALTER TABLE applications ADD COLUMN launch_without_confirmation BIGINT NOT NULL DEFAULT 0;
