//! Receiver integrations Sightline does not deliver to, checked for structure (being
//! built).
