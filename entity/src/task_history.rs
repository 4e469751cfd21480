//! `task_history`: the shadow table of [`crate::task`].

crate::shadow_table!("task_history");
