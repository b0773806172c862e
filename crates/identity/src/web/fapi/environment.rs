//! `GET /v1/environment`: what this instance offers, in Clerk's `EnvironmentJSON`
//! (`auth_config`, `display_config`, `user_settings`, `organization_settings`), so Clerk's
//! components draw the forms latchkey's flows take: email address and password to sign up,
//! the address verified by a mailed code; sign in by password or by code; one session per
//! browser; no captcha, no reverification, no organizations.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::state::Identity;

fn attribute(
    enabled: bool,
    required: bool,
    first_factors: &[&str],
    verifications: &[&str],
) -> Value {
    json!({
        "enabled": enabled,
        "required": required,
        "used_for_first_factor": !first_factors.is_empty(),
        "first_factors": first_factors,
        "used_for_second_factor": false,
        "second_factors": [],
        "verifications": verifications,
        "verify_at_sign_up": !verifications.is_empty(),
        "name": "",
    })
}

fn off() -> Value {
    attribute(false, false, &[], &[])
}

/// The environment JSON of this instance.
pub(crate) fn environment(identity: &Identity) -> Value {
    let config = identity.config();
    let base = config.issuer();
    let page = |path: &str| format!("{base}{path}");
    let site = config.mail.site_name.clone();
    // Where the components send people once they are done: the app, not latchkey's pages.
    let app = config
        .fapi
        .allowed_origins
        .first()
        .cloned()
        .unwrap_or_else(|| config.origin());
    json!({
        "object": "environment",
        "id": "env_latchkey",
        "auth_config": {
            "object": "auth_config",
            "id": "aac_latchkey",
            "single_session_mode": true,
            "claimed_at": null,
            "reverification": false,
        },
        "display_config": {
            "object": "display_config",
            "id": "display_config_latchkey",
            "instance_environment_type": "production",
            "application_name": site,
            "theme": {
                "buttons": {"font_color": "#ffffff", "font_family": "sans-serif", "font_weight": "600"},
                "general": {
                    "color": "#2f4ea1", "padding": "1em", "box_shadow": "none",
                    "font_color": "#151515", "font_family": "sans-serif", "border_radius": "0.5em",
                    "background_color": "#ffffff", "label_font_weight": "600",
                },
                "accounts": {"background_color": "#f2f2f2"},
            },
            "preferred_sign_in_strategy": "password",
            "logo_image_url": "",
            "favicon_image_url": "",
            "home_url": app,
            "sign_in_url": page("/sign-in"),
            "sign_up_url": page("/sign-up"),
            "user_profile_url": page("/user"),
            "waitlist_url": page("/sign-up"),
            "after_sign_in_url": app,
            "after_sign_up_url": app,
            "after_sign_out_one_url": page("/sign-in"),
            "after_sign_out_all_url": page("/sign-in"),
            "after_switch_session_url": app,
            "after_join_waitlist_url": app,
            "organization_profile_url": page("/user"),
            "create_organization_url": page("/user"),
            "after_leave_organization_url": app,
            "after_create_organization_url": app,
            "support_email": null,
            "branded": false,
            "captcha_public_key": null,
            "captcha_widget_type": null,
            "captcha_public_key_invisible": null,
            "captcha_provider": null,
            "captcha_oauth_bypass": [],
            "captcha_heartbeat": false,
            "google_one_tap_client_id": null,
            "show_devmode_warning": false,
            "terms_url": null,
            "privacy_policy_url": null,
            "clerk_js_version": null,
        },
        "user_settings": {
            "attributes": {
                "email_address": attribute(true, true, &["email_code", "reset_password_email_code"], &["email_code"]),
                "password": attribute(true, true, &[], &[]),
                "first_name": attribute(true, false, &[], &[]),
                "last_name": attribute(true, false, &[], &[]),
                "phone_number": off(),
                "username": off(),
                "web3_wallet": off(),
                "authenticator_app": off(),
                "backup_code": off(),
                "passkey": off(),
            },
            "actions": {"delete_self": true, "create_organization": false, "create_organizations_limit": null},
            "social": {},
            "enterprise_sso": {"enabled": false},
            "saml": {"enabled": false},
            "sign_in": {"second_factor": {"required": false}},
            "sign_up": {
                "custom_action_required": false,
                "progressive": true,
                "captcha_enabled": false,
                "captcha_widget_type": null,
                "disable_hibp": true,
                "mode": "public",
                "legal_consent_enabled": false,
                "mfa": {"required": false},
            },
            "restrictions": {
                "allowlist": {"enabled": false},
                "blocklist": {"enabled": false},
                "allowlist_blocklist_disabled_on_sign_in": {"enabled": false},
                "block_email_subaddresses": {"enabled": false},
                "block_disposable_email_domains": {"enabled": false},
            },
            "password_settings": {
                "allowed_special_characters": "",
                "max_length": crate::passwords::MAX_LENGTH,
                "min_length": crate::passwords::MIN_LENGTH,
                "require_special_char": false,
                "require_numbers": false,
                "require_lowercase": false,
                "require_uppercase": false,
                "disable_hibp": true,
                "show_zxcvbn": false,
                "min_zxcvbn_strength": 0,
                "enforce_hibp_on_sign_in": false,
            },
            "passkey_settings": {"allow_autofill": false, "show_sign_in_button": false},
            "attack_protection": {
                "user_lockout": {"enabled": true, "max_attempts": 10, "duration_in_minutes": 60},
                "pii": {"enabled": true},
                "email_link": {"require_same_client": true},
                "enumeration_protection": {"enabled": true},
            },
            "username_settings": {"min_length": 4, "max_length": 64},
        },
        "organization_settings": {
            "enabled": false,
            "max_allowed_memberships": 0,
            "force_organization_selection": false,
            "actions": {"admin_delete": false},
            "domains": {"enabled": false, "enrollment_modes": [], "default_role": null},
            "slug": {"disabled": true},
            "organization_creation_defaults": {"enabled": false},
        },
        "commerce_settings": {
            "object": "commerce_settings",
            "id": "commerce_settings_latchkey",
            "billing": {
                "stripe_publishable_key": "",
                "free_trial_requires_payment_method": false,
                "user": {"enabled": false, "has_paid_plans": false},
                "organization": {"enabled": false, "has_paid_plans": false},
            },
        },
        "api_keys_settings": {"user_api_keys_enabled": false, "orgs_api_keys_enabled": false, "enabled": false},
        "protect_config": {"object": "protect_config", "id": "protect_config_latchkey", "loaders": []},
        "client_debug_mode": false,
        "maintenance_mode": false,
        "partitioned_cookies": false,
    })
}

/// `GET /v1/environment`.
pub(crate) async fn get(State(identity): State<Identity>) -> Json<Value> {
    Json(environment(&identity))
}
