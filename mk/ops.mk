# Running fsrv as a service (docs/OPERATIONS.md): the configuration file
# (toml++), the version baked into the binary, systemd readiness
# (libsystemd's sd_notify), man pages (help2man) and install/uninstall.
#   make install [PREFIX=/usr/local] [DESTDIR=]  programs, man pages, the
#                          example configuration, the systemd unit, logrotate
#   make uninstall [PREFIX=...] [DESTDIR=]       removes what install put
#   make man               build/<variant>/man/*.1 from each program's --help
#   make test-install      install into a temporary DESTDIR, check the tree,
#                          uninstall, check it is empty; systemd-analyze verify

DEB_PACKAGES += libtomlplusplus-dev libsystemd-dev help2man
# toml++ is Debian's compiled build (TOML_HEADER_ONLY=0: its pkg-config
# flags); only bin/fileserver reads a configuration file.
fileserver_SRCS += src/main/config_file.cpp
fileserver_LDLIBS += -ltomlplusplus
$(BUILD)/src/main/config_file.o: CPPFLAGS += -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1
# sd_notify is called by the runtime (thread mode and the prefork master).
LDLIBS += -lsystemd

# ---- version ------------------------------------------------------------
FSRV_VERSION := 1.0.0
FSRV_COMMIT := $(or $(shell git rev-parse --short=12 HEAD 2>/dev/null),unknown)
VERSION_STAMP := $(BUILD)/.version
$(VERSION_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(FSRV_VERSION) $(FSRV_COMMIT)' | cmp -s - $@ || echo '$(FSRV_VERSION) $(FSRV_COMMIT)' > $@
$(BUILD)/src/core/version.o: $(VERSION_STAMP)
$(BUILD)/src/core/version.o: CPPFLAGS += -DFSRV_VERSION='"$(FSRV_VERSION)"' -DFSRV_COMMIT='"$(FSRV_COMMIT)"'

# ---- man pages -----------------------------------------------------------
MAN_PROGRAMS := fileserver filecli chatcli
MAN_DIR := $(BUILD)/man
MAN_PAGES := $(MAN_PROGRAMS:%=$(MAN_DIR)/%.1)
.PHONY: man install uninstall test-install

man: $(MAN_PAGES)

# help2man runs PROGRAM --help; the description section is hand-written
# (deploy/man/PROGRAM.h2m). --version-string: filecli and chatcli have no
# --version of their own, and one release number covers all three.
$(MAN_DIR)/%.1: $(BIN)/% deploy/man/%.h2m mk/ops.mk
	@mkdir -p $(@D)
	$(call say,MAN,$@)help2man --no-info --version-string='$(FSRV_VERSION)' \
	  --include=deploy/man/$*.h2m --output=$@ $(BIN)/$*

# ---- install -------------------------------------------------------------
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/fsrv
# /etc for a system install (PREFIX=/usr), PREFIX/etc otherwise (FHS).
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
# systemd reads units from /usr/lib/systemd/system (packages) and
# /usr/local/lib/systemd/system (the admin's own): PREFIX/lib/... is both.
UNITDIR ?= $(PREFIX)/lib/systemd/system
# The unit's user, made by systemd-sysusers (or at boot).
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
INSTALL_PROGRAMS := fileserver filecli chatcli
UNIT_OUT := $(BUILD)/deploy/fsrv.service

# The unit's paths follow BINDIR and SYSCONFDIR.
$(UNIT_OUT): deploy/fsrv.service mk/ops.mk FORCE
	@mkdir -p $(@D)
	@sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

install: $(INSTALL_PROGRAMS:%=$(BIN)/%) $(MAN_PAGES) $(UNIT_OUT)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/fsrv $(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(SYSUSERSDIR)
	install -m 755 $(INSTALL_PROGRAMS:%=$(BIN)/%) $(DESTDIR)$(BINDIR)/
	install -m 644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 deploy/fsrv.toml $(DESTDIR)$(DOCDIR)/fsrv.toml.example
	@# An edited configuration is never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/fsrv/fsrv.toml || \
	  install -m 644 deploy/fsrv.toml $(DESTDIR)$(SYSCONFDIR)/fsrv/fsrv.toml
	install -m 644 deploy/logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/fsrv
	install -m 644 $(UNIT_OUT) $(DESTDIR)$(UNITDIR)/fsrv.service
	install -m 644 deploy/fsrv.sysusers $(DESTDIR)$(SYSUSERSDIR)/fsrv.conf

# Removes what install put, except a configuration file that was edited
# (dpkg's conffile rule); empty folders of ours go too.
uninstall:
	rm -f $(INSTALL_PROGRAMS:%=$(DESTDIR)$(BINDIR)/%) $(MAN_PROGRAMS:%=$(DESTDIR)$(MANDIR)/man1/%.1) \
	  $(DESTDIR)$(DOCDIR)/fsrv.toml.example $(DESTDIR)$(SYSCONFDIR)/logrotate.d/fsrv \
	  $(DESTDIR)$(UNITDIR)/fsrv.service $(DESTDIR)$(SYSUSERSDIR)/fsrv.conf
	cmp -s deploy/fsrv.toml $(DESTDIR)$(SYSCONFDIR)/fsrv/fsrv.toml && \
	  rm -f $(DESTDIR)$(SYSCONFDIR)/fsrv/fsrv.toml || true
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/fsrv 2>/dev/null

test-install: $(INSTALL_PROGRAMS:%=$(BIN)/%) $(MAN_PAGES)
	tools/test-install.sh
