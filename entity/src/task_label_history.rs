//! `task_label_history`: the shadow table of [`crate::task_label`].

crate::shadow_table!("task_label_history");
