# Runs through train-k8s-container against dscan's debug container; with the
# chroot-wrapper strategy every command and file read lands in the target's
# root, and user/group names resolve against the target's /etc/passwd.

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
  title 'No setuid or setgid executables'
  tag nist: ['AC-6 (1)', 'CM-7']
  describe command('find / -xdev -type f \( -perm -4000 -o -perm -2000 \) 2>/dev/null') do
    its('stdout') { should be_empty }
  end
end
