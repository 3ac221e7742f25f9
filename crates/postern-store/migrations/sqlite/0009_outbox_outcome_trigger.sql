-- The `message.sent` / `message.failed` event of an outbox item, appended by the same statement
-- that ends its lease.
-- Additive only: earlier tables are untouched.
--
-- Why a trigger: ending a lease is the outbox's most frequent write, and SQLite has one writer.
-- As a trigger the event commits atomically with the status change in one autocommit statement,
-- instead of a four-step transaction (BEGIN, UPDATE, INSERT, COMMIT) that holds the write lock
-- across round trips while submissions wait behind it.
--
-- The payload: outbox_id, account_id, message_id, status, attempts, recipients (the stored
-- per-recipient JSON), and error (the last error) for failures. created_at is the update's time.
CREATE TRIGGER outbox_outcome_event
AFTER UPDATE OF status ON outbox
WHEN OLD.status = 'sending' AND NEW.status IN ('sent', 'failed')
BEGIN
    INSERT INTO events (account_id, kind, payload, created_at)
    VALUES (
        NEW.account_id,
        'message.' || NEW.status,
        CASE NEW.status
            WHEN 'sent' THEN json_object(
                'outbox_id', NEW.id, 'account_id', NEW.account_id,
                'message_id', NEW.message_id, 'status', NEW.status,
                'attempts', NEW.attempts, 'recipients', json(NEW.recipients))
            ELSE json_object(
                'outbox_id', NEW.id, 'account_id', NEW.account_id,
                'message_id', NEW.message_id, 'status', NEW.status,
                'attempts', NEW.attempts, 'recipients', json(NEW.recipients),
                'error', NEW.last_error)
        END,
        NEW.updated_at
    );
END;
