//! Bearer authentication: the security scheme of the spec and the extractors handlers use.

use poem::Request;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme, auth::Bearer,
    registry::Registry,
};

use crate::{error::ApiError, service::Caller, state::AppState};

/// A request authenticated with `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub Caller);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| poem::Error::from(ApiError::internal()))?;
    let caller = state
        .auth
        .authenticate(&bearer.token)
        .await
        .map_err(|e| poem::Error::from(ApiError::from(e)))?;
    crate::telemetry::record_user(caller.id);
    Ok(caller)
}

/// Authentication on endpoints open to anyone: no `Authorization` header means anonymous,
/// but a header that is present must hold a valid token (401 otherwise), so a client with
/// an expired token learns it instead of silently seeing less.
pub struct MaybeAuth(pub Option<Caller>);

impl<'a> ApiExtractor<'a> for MaybeAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        BearerAuth::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        BearerAuth::security_schemes()
    }

    fn has_security_fallback() -> bool {
        true
    }

    async fn from_request(
        request: &'a Request,
        body: &mut poem::RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        if !request
            .headers()
            .contains_key(poem::http::header::AUTHORIZATION)
        {
            return Ok(MaybeAuth(None));
        }
        let BearerAuth(caller) = BearerAuth::from_request(request, body, param_opts).await?;
        Ok(MaybeAuth(Some(caller)))
    }
}
