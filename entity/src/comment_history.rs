//! `comment_history`: the shadow table of [`crate::comment`].

crate::shadow_table!("comment_history");
