"""oslo.i18n integration for fastboot."""

import oslo_i18n

DOMAIN = 'fastboot'

_translators = oslo_i18n.TranslatorFactory(domain=DOMAIN)

# The primary translation function using the well-known name "_"
_ = _translators.primary
