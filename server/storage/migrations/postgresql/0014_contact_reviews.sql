-- Flags on contact-log entries that staff logged or imported are review items too, named
-- `contact-<entry id>` (server/storage/flag_reviews.py). An entry removed by the retention
-- purge takes its reviews with it, as a field record's do (0010).
CREATE FUNCTION doorstep_contact_reviews_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM flag_reviews WHERE record_id = 'contact-' || OLD.id;
    DELETE FROM flag_review_history WHERE record_id = 'contact-' || OLD.id;
    RETURN OLD;
END;
$$;
CREATE TRIGGER contacts_reviews_follow AFTER DELETE ON contacts
FOR EACH ROW EXECUTE FUNCTION doorstep_contact_reviews_follow();
