//! `label_history`: the shadow table of [`crate::label`].

crate::shadow_table!("label_history");
