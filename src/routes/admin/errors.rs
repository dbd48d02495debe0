//! The admin pages' door: every domain error a page handler meets becomes the same
//! problem the API would answer (`routes::errors`), shown as an HTML page.

use crate::accounts::AccountError;
use crate::admin::AdminAccessError;
use crate::db::DbError;
use crate::http::admin_page::PageError;
use crate::http::problem::ApiError;
use crate::policy::service::PolicyError;
use crate::webhooks::service::WebhookError;

macro_rules! shown_as_problem_pages {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for PageError {
            fn from(error: $error) -> Self {
                PageError::Problem(ApiError::from(error))
            }
        })*
    };
}

shown_as_problem_pages!(
    AccountError,
    AdminAccessError,
    DbError,
    PolicyError,
    WebhookError
);
