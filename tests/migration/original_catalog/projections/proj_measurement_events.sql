SELECT idem_key, canonical_object_id, binding_id, form_id, occurred_at
FROM derived.measurement_events
