# A baseline for distroless containers. dscan's native engine reads the
# target's files through its file agent, as the target's own user; CINC
# Auditor runs it through train-k8s-container and the chroot wrapper. User
# and group names resolve against the target's own /etc/passwd and /etc/group.

only_if('a Linux container') { os.linux? }

control 'CB-01' do
  impact 0.7
  title 'No shell is present in the image'
  tag nist: ['CM-7', 'CM-7 (1)']
  %w(/bin/sh /bin/bash /bin/dash /bin/ash /usr/bin/sh /usr/bin/bash).each do |shell|
    describe file(shell) do
      it { should_not exist }
    end
  end
end

control 'CB-02' do
  impact 0.5
  title 'No package manager is present in the image'
  tag nist: ['CM-7', 'CM-11']
  %w(/usr/bin/apt /usr/bin/apt-get /usr/bin/dpkg /sbin/apk /usr/bin/yum /usr/bin/rpm).each do |tool|
    describe file(tool) do
      it { should_not exist }
    end
  end
end

control 'CB-03' do
  impact 0.5
  title '/etc/passwd and /etc/group are 0644 and owned by root'
  tag nist: ['AC-3', 'AC-6']
  %w(/etc/passwd /etc/group).each do |path|
    describe file(path) do
      it { should be_owned_by 'root' }
      its('group') { should cmp 'root' }
      its('mode') { should cmp '0644' }
    end
  end
end

control 'CB-04' do
  impact 0.7
  title 'Only root has UID 0'
  tag nist: ['AC-6 (2)', 'IA-2']
  describe passwd.uids(0) do
    its('users') { should cmp ['root'] }
  end
end

control 'CB-05' do
  impact 0.7
  title 'No setuid or setgid executables where images usually carry them'
  tag nist: ['AC-6 (1)', 'CM-7']
  candidates = %w(/bin/su /usr/bin/su /usr/bin/passwd /usr/bin/chsh /usr/bin/chfn /usr/bin/newgrp
                  /usr/bin/gpasswd /usr/bin/mount /usr/bin/umount /bin/mount /bin/umount /usr/bin/sudo)
  privileged = candidates.select { |path| file(path).exist? && (file(path).setuid? || file(path).setgid?) }
  describe privileged do
    it { should be_empty }
  end
end

control 'CB-06' do
  impact 0.5
  title 'Every account but root is non-root and none has a login shell'
  tag nist: ['AC-2', 'AC-6']
  describe passwd.where { user != 'root' } do
    its('uids') { should_not include '0' }
  end
  passwd.shells.each do |shell|
    describe shell do
      it { should match %r{/(nologin|false)$} }
    end
  end
end

control 'CB-07' do
  impact 0.5
  title 'The image says what it is (os-release) and trusts a CA bundle'
  tag nist: ['CM-8', 'SC-8']
  describe parse_config_file('/etc/os-release') do
    its('ID') { should_not be_nil }
  end
  describe file('/etc/ssl/certs/ca-certificates.crt') do
    it { should be_file }
    it { should_not be_more_permissive_than('0644') }
  end
end

control 'CB-08' do
  impact 0.5
  title 'Home directories are private'
  tag nist: ['AC-3']
  describe directory('/root') do
    it { should_not be_readable.by('others') }
  end
end
