# The "Boot Batches" panel of the "Fast Boot" group (Project dashboard).
PANEL = 'fastboot_batches'
PANEL_DASHBOARD = 'project'
PANEL_GROUP = 'fastboot'
ADD_PANEL = 'fastboot_dashboard.content.batches.panel.Batches'
ADD_INSTALLED_APPS = ['fastboot_dashboard']
