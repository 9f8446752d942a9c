-- Clinic on-duty schedules (值班): a critical value (危急值) alerts the source
-- institution's clinic users who are on duty when it is raised. Same grammar as a reader
-- pool member's schedule (`mon-fri 08:00-17:30; sat,sun 08:00-12:00`, China Standard
-- Time); NULL means always on duty. When nobody in the chain is on duty, everybody is
-- alerted (a critical value never goes unannounced).
ALTER TABLE users ADD COLUMN duty_schedule TEXT;
