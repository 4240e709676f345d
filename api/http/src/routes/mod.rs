//! The routes under `/v1`, one file per resource; what they share (proposing a command,
//! reading at a consistency, the answer to a write) is in `calls`.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub mod browse;
pub mod calls;
pub mod health;
pub mod holds;
pub mod ledger;
pub mod orders;
pub mod scans;
pub mod seller;
pub mod users;
pub mod venues;

/// Every route, with its OpenAPI description.
pub fn router(doc: utoipa::openapi::OpenApi) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(doc)
        .routes(routes!(health::healthz))
        .routes(routes!(browse::list_events, seller::create_event))
        .routes(routes!(browse::get_event))
        .routes(routes!(browse::list_dts, seller::create_dt))
        .routes(routes!(browse::get_dt, holds::purchase))
        .routes(routes!(holds::create_hold))
        .routes(routes!(holds::get_hold, holds::release_hold))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(orders::my_orders))
        .routes(routes!(orders::my_tickets))
        .routes(routes!(orders::get_ticket))
        .routes(routes!(orders::refund_ticket))
        .routes(routes!(scans::scan))
        .routes(routes!(users::sign_up))
        .routes(routes!(users::log_in))
        .routes(routes!(users::me))
        .routes(routes!(users::set_reminders))
        .routes(routes!(users::save_payment_method))
        .routes(routes!(seller::create_venue))
        .routes(routes!(venues::get_venue))
        .routes(routes!(seller::change_sale_window))
        .routes(routes!(seller::publish_dt))
        .routes(routes!(seller::cancel_dt))
        .routes(routes!(seller::sales_report))
        .routes(routes!(seller::set_plan))
        .routes(routes!(ledger::seller_ledger))
}
