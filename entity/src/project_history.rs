//! `project_history`: the shadow table of [`crate::project`].

crate::shadow_table!("project_history");
