/** Owner accounts: organisations and owners, password policy, TOTP, login and sessions. */
export * from './config.js';
export * from './password.js';
export * from './totp.js';
export * from './owners.js';
export * from './session.js';
export * from './login.js';
